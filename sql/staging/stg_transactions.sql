-- Order lines that can be aggregated: typed, checked, exact copies collapsed. Returns
-- (cancellations) are staged with a negative value, not rejected.
with

checked as (
    select * from staging.stg_transactions_checked
),

collapsed as (
    select * from staging.stg_transactions_copies
    where is_collapsed
)

select
    customer_id,
    order_id,
    order_date,
    product_id,
    quantity,
    unit_price,
    line_value,
    is_return,
    is_purchase,
    is_non_product,
    each(transactions, _),
    source_file,
    line_number
from checked
anti join collapsed
    on checked.source_file = collapsed.source_file
    and checked.line_number = collapsed.line_number
where len(checked.reasons) = 0
