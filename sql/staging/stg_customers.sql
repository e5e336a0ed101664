-- Typed, cleaned, de-duplicated customers: one row per customer id.
-- Stored in no particular order: ORDER BY customer_id when the order matters.
with

checked as (
    select * from staging.stg_customers_checked
)

-- No ORDER BY: at 10M customers the sort cost three times the rest of the model.
select
    customer_id,
    each(customers, _),
    source_file,
    line_number
from checked
where len(reasons) = 0
    and not is_collapsed_duplicate
