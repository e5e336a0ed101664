-- One row per raw order line that could not be staged, with every reason and the text it held.
-- role: rejected_rows
with

checked as (
    select * from staging.stg_transactions_checked
)

select
    source_file,
    line_number,
    array_to_string(reasons, '; ') as reason_text,  -- The reasons in one line, separated by '; '
    reasons,
    customer_id_text,
    order_id,
    order_date_text,
    product_id,
    amount_text,
    quantity_text,
    unit_price_text,
    each(transactions, _text)
from checked
where len(reasons) > 0
order by source_file, line_number
