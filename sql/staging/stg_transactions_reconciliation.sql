-- Proves no order line was lost: every raw line is staged, rejected, or collapsed as an exact copy.
-- role: reconciliation
with

raw_count as (
    select count(*) as raw_rows from raw.transactions
),

staged_count as (
    select count(*) as staged_rows from staging.stg_transactions
),

rejected_count as (
    select count(*) as rejected_rows from staging.stg_transactions_rejected
),

copy_counts as (
    select
        count(*) filter (where is_collapsed) as collapsed_rows,
        count(*) filter (where not is_collapsed) as staged_copy_rows
    from staging.stg_transactions_copies
)

select
    raw_rows,  -- Lines in raw.transactions
    staged_rows,  -- Lines staged in stg_transactions
    rejected_rows,  -- Lines rejected with reasons (stg_transactions_rejected)
    collapsed_rows,  -- Exact copies of a staged line, collapsed into it
    staged_copy_rows,  -- Exact copies of a staged line staged as purchases of their own (transactions.collapse_copies), among staged_rows
    raw_rows = staged_rows + rejected_rows + collapsed_rows as is_balanced,  -- Every raw line is accounted for
    case when raw_rows > 0 then rejected_rows / raw_rows else 0 end as rejected_share  -- rejected_rows / raw_rows
from raw_count
cross join staged_count
cross join rejected_count
cross join copy_counts
