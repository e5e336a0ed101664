-- Typed, cleaned, de-duplicated customers: one row per customer id.
-- Stored in no particular order (sorting 10M customers cost three times the rest of the model).
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
