-- Proves nothing was lost: every raw row is staged, rejected, or collapsed as an exact duplicate.
-- role: reconciliation
with

raw_count as (
    select count(*) as raw_rows from raw.customers
),

staged_count as (
    select count(*) as staged_rows from staging.stg_customers
),

rejected_count as (
    select count(*) as rejected_rows from staging.stg_customers_rejected
),

collapsed_count as (
    select count(*) filter (where is_collapsed_duplicate) as collapsed_rows
    from staging.stg_customers_checked
)

select
    raw_rows,  -- Rows in raw.customers
    staged_rows,  -- Rows staged in stg_customers
    rejected_rows,  -- Rows rejected with reasons (stg_customers_rejected)
    collapsed_rows,  -- Exact copies of a staged row, collapsed into it
    raw_rows = staged_rows + rejected_rows + collapsed_rows as is_balanced,  -- Every raw row is accounted for
    case when raw_rows > 0 then rejected_rows / raw_rows else 0 end as rejected_share  -- rejected_rows / raw_rows
from raw_count
cross join staged_count
cross join rejected_count
cross join collapsed_count
