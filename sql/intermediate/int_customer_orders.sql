-- One row per customer with staged order lines: recency, frequency, monetary and the other
-- order aggregates, counted to the snapshot date. Which orders are purchase orders, and what
-- returns took back, comes from int_orders (returns matched last in, first out). A cancelled
-- order counts for neither frequency nor recency. The part of a return that no earlier purchase
-- explains (something bought before the data begins) is unmatched: monetary leaves it out unless
-- transactions.unmatched_returns = 'subtract'. A customer with no purchase order left has
-- frequency 0 and no purchase dates (int_customer_profiles does not segment them).
with

lines as (
    select * from staging.stg_transactions
),

orders as (
    select * from intermediate.int_orders
),

settings as (
    select * from config.order_settings
),

latest as (
    select cast(max(order_date) as date) + 1 as day_after_latest_order
    from lines
),

snapshot as (
    select coalesce(settings.snapshot_date, latest.day_after_latest_order) as snapshot_date
    from settings
    cross join latest
),

-- Values are summed as decimals (each line's value to 10 decimal places): a sum of doubles
-- depends on the order DuckDB's threads add them in, and so would every figure after it. Sums are
-- divided as doubles (Spark would round a decimal quotient to 6 places).
not_purchased as (
    select distinct customer_id, order_id, is_cancelled
    from orders
    where not is_purchase_order
),

ordered as (
    select
        lines.*,
        not_purchased.order_id is null as in_purchase_order,
        coalesce(not_purchased.is_cancelled, false) as in_cancelled_order,
        cast(lines.line_value as decimal(38, 10)) as exact_value
    from lines
    left join not_purchased
        on lines.customer_id = not_purchased.customer_id
        and lines.order_id = not_purchased.order_id
),

order_values as (
    select
        customer_id,
        sum(return_value) as return_value,
        sum(unmatched_return_value) as unmatched_return_value,
        cast(sum(unmatched_return_lines) as bigint) as unmatched_return_lines,
        sum(
            cast(purchase_value as decimal(37, 10)) - cast(returned_value as decimal(37, 10))
        ) filter (where is_purchase_order) as purchase_order_value
    from orders
    group by customer_id
),

per_customer as (
    select
        customer_id,
        count(distinct order_id) filter (where is_purchase and in_purchase_order) as orders,
        count(distinct cast(order_date as date)) filter (
            where is_purchase and in_purchase_order
        ) as purchase_days,
        count(distinct order_id) filter (where is_purchase and in_cancelled_order)
            as cancelled_orders,
        count(distinct order_id) filter (where is_return) as return_orders,
        coalesce(sum(exact_value) filter (where is_purchase), 0) as purchase_value,
        coalesce(sum(exact_value) filter (where is_non_product), 0) as non_product_value,
        count(*) filter (where is_non_product) as non_product_lines,
        min(order_date) filter (where is_purchase and in_purchase_order) as first_purchase_at,
        max(order_date) filter (where is_purchase and in_purchase_order) as last_purchase_at,
        count(distinct product_id) filter (
            where is_purchase and in_purchase_order
        ) as distinct_products,
        count(*) as order_lines,
        each(transactions, mode(_ order by _) as _)
    from ordered
    group by customer_id
),

valued as (
    select
        per_customer.*,
        order_values.return_value,
        order_values.unmatched_return_value,
        order_values.unmatched_return_lines,
        order_values.purchase_order_value
    from per_customer
    inner join order_values
        on per_customer.customer_id = order_values.customer_id
)

select
    valued.customer_id,  -- The customer (staging.stg_transactions)
    snapshot.snapshot_date,  -- The date recency and tenure count to: transactions.snapshot_date, or the day after the latest staged order date
    date_diff('day', cast(valued.last_purchase_at as date), snapshot.snapshot_date)
        as recency_days,  -- Days from the last purchase order's date to snapshot_date; null without a purchase order
    case
        when settings.frequency_counts = 'purchase_days' then valued.purchase_days
        else valued.orders
    end as frequency,  -- Purchase orders, or the days with one (transactions.frequency)
    cast(
        valued.purchase_value
        - valued.return_value
        - case
            when settings.subtracts_unmatched_returns then valued.unmatched_return_value
            else 0
        end
        as double
    ) as monetary,  -- Value bought less the value of its returns (unmatched returns too when transactions.unmatched_returns = 'subtract'); non-product lines are not part of it
    valued.orders,  -- Purchase orders: orders of products worth more than what their later returns took back
    valued.purchase_days,  -- Distinct days with a purchase order
    date_diff('day', cast(valued.first_purchase_at as date), snapshot.snapshot_date)
        as tenure_days,  -- Days from the first purchase order's date to snapshot_date; null without a purchase order
    cast(valued.purchase_order_value as double)
        / nullif(valued.orders, 0) as average_order_value,  -- Value of the purchase orders after their returns / orders
    case
        when valued.purchase_value > 0
            then cast(valued.return_value as double)
                / cast(valued.purchase_value as double)
    end as return_share,  -- Value returned (matched to a purchase) / value purchased
    case
        when is_mapped(transactions, product_id) then valued.distinct_products
    end as distinct_products,  -- Distinct products in purchase orders; null without a mapped product_id
    cast(valued.purchase_value as double) as purchase_value,  -- Value of the purchase lines, cancelled orders included
    cast(valued.return_value as double) as return_value,  -- Value of the returns matched to an earlier purchase, as a positive amount
    valued.return_orders,  -- Distinct orders that are returns
    valued.cancelled_orders,  -- Orders of products that later returns took back in full: not purchase orders
    cast(valued.unmatched_return_value as double)
        as unmatched_return_value,  -- Value of returns no earlier purchase in the data explains, as a positive amount
    valued.unmatched_return_lines,  -- Return lines with an unmatched part
    cast(valued.non_product_value as double)
        as non_product_value,  -- Net value of lines of transactions.non_product_codes (postage, fees)
    valued.non_product_lines,  -- Staged lines of transactions.non_product_codes
    valued.order_lines,  -- Staged lines of every kind
    cast(valued.first_purchase_at as date) as first_purchase_date,  -- The first purchase order's date
    cast(valued.last_purchase_at as date) as last_purchase_date,  -- The last purchase order's date
    each(transactions, valued._),  -- The customer's most frequent {column} over their lines (ties: the first in sort order)
    valued.orders > 0 as has_purchase  -- False for a customer with no purchase order left
from valued
cross join snapshot
cross join settings
order by valued.customer_id
