-- One row per customer with staged order lines: recency, frequency, monetary and the other
-- order aggregates, counted to the snapshot date. A customer whose lines are all returns has no
-- purchase: frequency 0 and no purchase dates (int_customer_profiles does not segment them).
with

lines as (
    select * from staging.stg_transactions
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
-- depends on the order DuckDB's threads add them in, and so would every figure after it.
exact_lines as (
    select
        lines.*,
        cast(line_value as decimal(38, 10)) as exact_value
    from lines
),

per_customer as (
    select
        customer_id,
        count(distinct order_id) filter (where is_purchase) as frequency,
        count(distinct order_id) filter (where is_return) as return_orders,
        cast(sum(exact_value) as double) as monetary,
        cast(coalesce(sum(exact_value) filter (where is_purchase), 0) as double) as purchase_value,
        cast(coalesce(-sum(exact_value) filter (where is_return), 0) as double) as return_value,
        min(order_date) filter (where is_purchase) as first_purchase_at,
        max(order_date) filter (where is_purchase) as last_purchase_at,
        count(distinct product_id) filter (where is_purchase) as distinct_products,
        count(*) as order_lines,
        each(transactions, mode(_ order by _) as _)
    from exact_lines
    group by customer_id
)

select
    per_customer.customer_id,  -- The customer (staging.stg_transactions)
    snapshot.snapshot_date,  -- The date recency and tenure count to: transactions.snapshot_date, or the day after the latest staged order date
    date_diff('day', cast(per_customer.last_purchase_at as date), snapshot.snapshot_date)
        as recency_days,  -- Days from the last purchase date to snapshot_date; null without a purchase
    per_customer.frequency,  -- Distinct purchase orders (not cancellations; without order ids, lines with a positive value)
    per_customer.monetary,  -- Net value of all the customer's staged lines, returns subtracted
    date_diff('day', cast(per_customer.first_purchase_at as date), snapshot.snapshot_date)
        as tenure_days,  -- Days from the first purchase date to snapshot_date; null without a purchase
    case
        when per_customer.frequency > 0 then per_customer.purchase_value / per_customer.frequency
    end as average_order_value,  -- Purchase value / frequency (returns not subtracted)
    case
        when per_customer.purchase_value > 0
            then per_customer.return_value / per_customer.purchase_value
    end as return_share,  -- Value returned / value purchased; above 1 when returns exceed the purchases in the data
    case
        when is_mapped(transactions, product_id) then per_customer.distinct_products
    end as distinct_products,  -- Distinct products on purchase lines; null without a mapped product_id
    per_customer.purchase_value,  -- Value of the purchase lines
    per_customer.return_value,  -- Value of the return lines, as a positive amount
    per_customer.return_orders,  -- Distinct orders that are returns
    per_customer.order_lines,  -- Staged lines, purchases and returns
    cast(per_customer.first_purchase_at as date) as first_purchase_date,  -- The first purchase's date
    cast(per_customer.last_purchase_at as date) as last_purchase_date,  -- The last purchase's date
    each(transactions, per_customer._),  -- The customer's most frequent {column} over their lines (ties: the first in sort order)
    per_customer.frequency > 0 as has_purchase  -- False for a customer with returns only
from per_customer
cross join snapshot
order by per_customer.customer_id
