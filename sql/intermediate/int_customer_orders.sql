-- One row per customer with staged order lines: recency, frequency, monetary and the other
-- order aggregates, counted to the snapshot date.
-- A return takes back the same customer's latest earlier purchases of the same product first
-- (last in, first out; in units where quantity is mapped, else in value; without a product_id,
-- over all the customer's lines). An order whose purchases its later returns took back in full is
-- cancelled: it counts for neither frequency nor recency. The part of a return that no earlier
-- purchase explains (something bought before the data begins) is unmatched: monetary leaves it
-- out unless transactions.unmatched_returns = 'subtract'. A customer with no purchase order left
-- has frequency 0 and no purchase dates (int_customer_profiles does not segment them).
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
-- depends on the order DuckDB's threads add them in, and so would every figure after it. Sums are
-- divided as doubles (Spark would round a decimal quotient to 6 places). Each line moves the
-- stock of its product (bought and not yet returned) by its weight.
weighted as (
    select
        lines.*,
        cast(line_value as decimal(38, 10)) as exact_value,
        case
            when lines.is_purchase or lines.is_return
                then cast(
                    abs(
                        case
                            when is_mapped(transactions, quantity) then lines.quantity
                            else lines.line_value
                        end
                    ) as decimal(38, 10)
                )
            else cast(0 as decimal(38, 10))
        end as weight,
        coalesce(lines.product_id, '') as product_key
    from lines
),

returned_products as (
    select distinct customer_id, product_key
    from weighted
    where is_return
),

-- Only the products a customer returned need matching: every other line keeps what it bought.
in_play as (
    select weighted.*
    from weighted
    semi join returned_products
        on weighted.customer_id = returned_products.customer_id
        and weighted.product_key = returned_products.product_key
),

moves as (
    select
        in_play.*,
        case when is_return then -weight else weight end as stock_change,
        row_number() over (
            partition by customer_id, product_key
            order by order_date, is_return, source_file, line_number
        ) as sequence
    from in_play
),

running as (
    select
        moves.*,
        sum(stock_change) over (
            partition by customer_id, product_key
            order by sequence
            rows between unbounded preceding and current row
        ) as running_total
    from moves
),

-- The lowest the running total has been is what returns took beyond the purchases before them:
-- the stock is the running total above that floor.
floored as (
    select
        running.*,
        least(
            cast(0 as decimal(38, 10)),
            min(running_total) over (
                partition by customer_id, product_key
                order by sequence
                rows between unbounded preceding and current row
            )
        ) as shortfall
    from running
),

stocked as (
    select
        floored.*,
        running_total - shortfall as stock,
        coalesce(
            lag(shortfall, 1) over (partition by customer_id, product_key order by sequence),
            cast(0 as decimal(38, 10))
        ) - shortfall as unmatched_weight
    from floored
),

-- A purchase's units sit on the stock between its level before and after it; later returns
-- take back the part above the lowest level the stock reaches after it.
matched as (
    select
        stocked.*,
        min(stock) over (
            partition by customer_id, product_key
            order by sequence
            rows between 1 following and unbounded following
        ) as lowest_later_stock
    from stocked
),

returned as (
    select
        matched.*,
        case
            when not is_purchase or weight = 0 then cast(0 as decimal(38, 10))
            else greatest(
                cast(0 as decimal(38, 10)),
                stock - greatest(stock - weight, coalesce(lowest_later_stock, stock))
            )
        end as returned_weight
    from matched
),

-- A share of a line is valued at its own price; a whole line keeps its exact value.
matched_lines as (
    select
        customer_id,
        order_id,
        source_file,
        line_number,
        case
            when returned_weight = weight then exact_value
            else cast(
                line_value * (cast(returned_weight as double) / cast(weight as double))
                as decimal(38, 10)
            )
        end as returned_value,
        case
            when not is_return or unmatched_weight = 0 then cast(0 as decimal(38, 10))
            when unmatched_weight = weight then -exact_value
            else cast(
                -line_value * (cast(unmatched_weight as double) / cast(weight as double))
                as decimal(38, 10)
            )
        end as unmatched_value
    from returned
),

order_returns as (
    select customer_id, order_id, sum(returned_value) as returned_value
    from matched_lines
    group by customer_id, order_id
),

orders as (
    select customer_id, order_id, sum(exact_value) filter (where is_purchase) as purchase_value
    from weighted
    group by customer_id, order_id
),

-- Orders of products that are not purchase orders: cancelled in full, or worth nothing.
not_purchased as (
    select
        orders.customer_id,
        orders.order_id,
        orders.purchase_value > 0 as is_cancelled
    from orders
    left join order_returns
        on orders.customer_id = order_returns.customer_id
        and orders.order_id = order_returns.order_id
    where orders.purchase_value - coalesce(order_returns.returned_value, 0) <= 0
),

ordered as (
    select
        weighted.*,
        not_purchased.order_id is null as in_purchase_order,
        coalesce(not_purchased.is_cancelled, false) as in_cancelled_order,
        coalesce(matched_lines.returned_value, 0) as returned_value,
        coalesce(matched_lines.unmatched_value, 0) as unmatched_value
    from weighted
    left join not_purchased
        on weighted.customer_id = not_purchased.customer_id
        and weighted.order_id = not_purchased.order_id
    left join matched_lines
        on weighted.source_file = matched_lines.source_file
        and weighted.line_number = matched_lines.line_number
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
        coalesce(-sum(exact_value + unmatched_value) filter (where is_return), 0) as return_value,
        coalesce(sum(unmatched_value), 0) as unmatched_return_value,
        count(*) filter (where unmatched_value > 0) as unmatched_return_lines,
        coalesce(sum(exact_value) filter (where is_non_product), 0) as non_product_value,
        count(*) filter (where is_non_product) as non_product_lines,
        sum(exact_value - returned_value) filter (
            where is_purchase and in_purchase_order
        ) as purchase_order_value,
        min(order_date) filter (where is_purchase and in_purchase_order) as first_purchase_at,
        max(order_date) filter (where is_purchase and in_purchase_order) as last_purchase_at,
        count(distinct product_id) filter (
            where is_purchase and in_purchase_order
        ) as distinct_products,
        count(*) as order_lines,
        each(transactions, mode(_ order by _) as _)
    from ordered
    group by customer_id
)

select
    per_customer.customer_id,  -- The customer (staging.stg_transactions)
    snapshot.snapshot_date,  -- The date recency and tenure count to: transactions.snapshot_date, or the day after the latest staged order date
    date_diff('day', cast(per_customer.last_purchase_at as date), snapshot.snapshot_date)
        as recency_days,  -- Days from the last purchase order's date to snapshot_date; null without a purchase order
    case
        when settings.frequency_counts = 'purchase_days' then per_customer.purchase_days
        else per_customer.orders
    end as frequency,  -- Purchase orders, or the days with one (transactions.frequency)
    cast(
        per_customer.purchase_value
        - per_customer.return_value
        - case
            when settings.subtracts_unmatched_returns then per_customer.unmatched_return_value
            else 0
        end
        as double
    ) as monetary,  -- Value bought less the value of its returns (unmatched returns too when transactions.unmatched_returns = 'subtract'); non-product lines are not part of it
    per_customer.orders,  -- Purchase orders: orders of products worth more than what their later returns took back
    per_customer.purchase_days,  -- Distinct days with a purchase order
    date_diff('day', cast(per_customer.first_purchase_at as date), snapshot.snapshot_date)
        as tenure_days,  -- Days from the first purchase order's date to snapshot_date; null without a purchase order
    cast(per_customer.purchase_order_value as double)
        / nullif(per_customer.orders, 0) as average_order_value,  -- Value of the purchase orders after their returns / orders
    case
        when per_customer.purchase_value > 0
            then cast(per_customer.return_value as double)
                / cast(per_customer.purchase_value as double)
    end as return_share,  -- Value returned (matched to a purchase) / value purchased
    case
        when is_mapped(transactions, product_id) then per_customer.distinct_products
    end as distinct_products,  -- Distinct products in purchase orders; null without a mapped product_id
    cast(per_customer.purchase_value as double) as purchase_value,  -- Value of the purchase lines, cancelled orders included
    cast(per_customer.return_value as double) as return_value,  -- Value of the returns matched to an earlier purchase, as a positive amount
    per_customer.return_orders,  -- Distinct orders that are returns
    per_customer.cancelled_orders,  -- Orders of products that later returns took back in full: not purchase orders
    cast(per_customer.unmatched_return_value as double)
        as unmatched_return_value,  -- Value of returns no earlier purchase in the data explains, as a positive amount
    per_customer.unmatched_return_lines,  -- Return lines with an unmatched part
    cast(per_customer.non_product_value as double)
        as non_product_value,  -- Net value of lines of transactions.non_product_codes (postage, fees)
    per_customer.non_product_lines,  -- Staged lines of transactions.non_product_codes
    per_customer.order_lines,  -- Staged lines of every kind
    cast(per_customer.first_purchase_at as date) as first_purchase_date,  -- The first purchase order's date
    cast(per_customer.last_purchase_at as date) as last_purchase_date,  -- The last purchase order's date
    each(transactions, per_customer._),  -- The customer's most frequent {column} over their lines (ties: the first in sort order)
    per_customer.orders > 0 as has_purchase  -- False for a customer with no purchase order left
from per_customer
cross join snapshot
cross join settings
order by per_customer.customer_id
