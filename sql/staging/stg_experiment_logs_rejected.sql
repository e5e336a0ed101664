-- One row per experiment log row that cannot be analysed, with every reason.
-- role: rejected_rows
with

checked as (
    select * from staging.stg_experiment_logs_checked
)

select
    source_file,
    line_number,
    experiment,
    array_to_string(reasons, '; ') as reason_text,  -- The reasons in one line, separated by '; '
    reasons,
    customer_id_text,
    variant_text,
    outcome_text
from checked
where len(reasons) > 0
order by source_file, line_number
