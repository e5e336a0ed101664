-- One row per customer with a purchase order: what the customer value models (BG/NBD,
-- Gamma-Gamma) fit on, over the calibration period and over the whole observation, and what
-- the customer bought in the holdout after calibration. A purchase is a day with a purchase
-- order (several orders on one day are one purchase), valued after the returns that took part
-- of it back; the models count the repeat purchases after the first. Periods are days or weeks
-- (value.period). The observation ends the day before transactions.snapshot_date.
with

purchases as (
    select * from intermediate.int_customer_purchases
),

customers as (
    select * from intermediate.int_customer_orders
),

settings as (
    select * from config.value_settings
),

observation as (
    select max(snapshot_date) - 1 as observation_end
    from customers
),

periods as (
    select
        observation.observation_end,
        coalesce(
            settings.calibration_end,
            observation.observation_end - settings.holdout_periods * settings.period_days
        ) as calibration_end,
        settings.period_days
    from observation
    cross join settings
),

numbered as (
    select
        purchases.customer_id,
        purchases.purchase_date as order_day,
        purchases.purchase_number,
        purchases.purchase_value,
        periods.*,
        purchases.purchase_date <= periods.calibration_end as in_calibration
    from purchases
    cross join periods
),

per_customer as (
    select
        customer_id,
        min(observation_end) as observation_end,
        min(calibration_end) as calibration_end,
        min(period_days) as period_days,
        min(order_day) as first_purchase_date,
        max(order_day) as last_purchase_date,
        count(*) - 1 as repeat_purchases,
        sum(purchase_value) filter (where purchase_number > 1) as repeat_value,
        sum(purchase_value) as total_value,
        count(*) filter (where in_calibration) - 1 as calibration_repeat_purchases,
        max(order_day) filter (where in_calibration) as calibration_last_purchase_date,
        sum(purchase_value) filter (
            where in_calibration and purchase_number > 1
        ) as calibration_repeat_value,
        count(*) filter (where not in_calibration) as holdout_purchases,
        sum(purchase_value) filter (where not in_calibration) as holdout_value
    from numbered
    group by customer_id
)

select
    customer_id,  -- The customer (intermediate.int_customer_purchases)
    first_purchase_date,  -- The day of the first purchase
    last_purchase_date,  -- The day of the last purchase up to the observation's end
    observation_end,  -- The last day observed: the day before transactions.snapshot_date
    calibration_end,  -- The last day of calibration (value.calibration_end, or observation_end minus value.holdout_periods)
    repeat_purchases,  -- x: purchase days after the first, over the whole observation
    cast(date_diff('day', first_purchase_date, last_purchase_date) as double)
        / period_days as recency_period,  -- t_x: periods (value.period) from the first purchase to the last; not RFM's recency
    cast(date_diff('day', first_purchase_date, observation_end) as double)
        / period_days as age_period,  -- T: periods from the first purchase to the observation's end
    cast(repeat_value as double) / nullif(repeat_purchases, 0)
        as mean_repeat_value,  -- The mean value of the repeat purchases (the first left out, as Gamma-Gamma takes it); null without one
    cast(total_value as double) / (repeat_purchases + 1)
        as mean_purchase_value,  -- The mean value of all the customer's purchases
    first_purchase_date <= calibration_end
        as in_calibration,  -- The first purchase falls in the calibration period: the customer takes part in the holdout comparison
    case
        when first_purchase_date <= calibration_end then calibration_repeat_purchases
    end as calibration_repeat_purchases,  -- x over calibration; null when the first purchase is after calibration
    case
        when first_purchase_date <= calibration_end
            then cast(
                date_diff('day', first_purchase_date, calibration_last_purchase_date) as double
            ) / period_days
    end as calibration_recency_period,  -- t_x over calibration
    case
        when first_purchase_date <= calibration_end
            then cast(date_diff('day', first_purchase_date, calibration_end) as double)
                / period_days
    end as calibration_age_period,  -- T over calibration: periods from the first purchase to calibration_end
    case
        when first_purchase_date <= calibration_end
            then cast(calibration_repeat_value as double)
                / nullif(calibration_repeat_purchases, 0)
    end as calibration_mean_repeat_value,  -- The mean value of the repeat purchases in calibration
    case
        when first_purchase_date <= calibration_end then holdout_purchases
    end as holdout_purchases,  -- Purchases after calibration (all repeats) for a calibration customer
    case
        when first_purchase_date <= calibration_end
            then coalesce(cast(holdout_value as double), 0)
    end as holdout_value,  -- Their value
    cast(date_diff('day', calibration_end, observation_end) as double)
        / period_days as holdout_length_period  -- The holdout's length in periods
from per_customer
order by customer_id
