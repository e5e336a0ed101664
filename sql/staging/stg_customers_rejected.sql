-- One row per raw row that could not be staged, with every reason and the text it held.
-- role: rejected_rows
with

checked as (
    select * from staging.stg_customers_checked
)

select
    source_file,
    line_number,
    array_to_string(reasons, '; ') as reason_text,  -- The reasons in one line, separated by '; '
    reasons,
    customer_id_text,
    each(customers, _text)
from checked
where len(reasons) > 0
order by source_file, line_number
