-- Exposures that can be analysed: one per experiment and customer.
with

checked as (
    select * from staging.stg_experiment_logs_checked
)

select
    experiment,
    customer_id,
    variant,
    outcome,
    pre_period_value,
    exposed_at,
    source_file,
    line_number
from checked
where len(reasons) = 0
order by experiment, customer_id
