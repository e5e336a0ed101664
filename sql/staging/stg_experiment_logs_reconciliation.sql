-- Every raw exposure is either staged or rejected with a reason: none is lost.
-- role: reconciliation
with

raw_count as (
    select count(*) as raw_rows from raw.experiment_logs
),

staged_count as (
    select count(*) as staged_rows from staging.stg_experiment_logs
),

rejected_count as (
    select count(*) as rejected_rows from staging.stg_experiment_logs_rejected
)

select
    raw_rows,  -- Rows in raw.experiment_logs
    staged_rows,  -- Exposures staged in stg_experiment_logs
    rejected_rows,  -- Rows rejected with reasons (stg_experiment_logs_rejected)
    raw_rows = staged_rows + rejected_rows as is_balanced  -- Every raw row is accounted for
from raw_count
cross join staged_count
cross join rejected_count
