-- Typed, cleaned, de-duplicated customers: one row per customer id.
with

checked as (
    select * from staging.stg_customers_checked
)

select
    customer_id,
    each(customers, _),
    source_file,
    line_number
from checked
where len(reasons) = 0
    and not is_collapsed_duplicate
order by customer_id
