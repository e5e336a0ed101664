-- How well the value models predicted the holdout after value.calibration_end, next to a naive
-- baseline (each customer keeps buying at their calibration rate and mean value): per-customer
-- mean absolute and root-mean-square errors of repeat purchases and of spend, and the error of
-- the total at the holdout's end. Where the model's error is not below the baseline's, its
-- predictions do not earn their place on this data.
with

customers as (
    select * from ml.value_holdout_customers
),

tracking as (
    select * from marts.value_holdout_tracking
),

final_period as (
    select *
    from tracking
    where period = (select max(period) from tracking)
),

errors as (
    select
        count(*) as customers,
        repeatable_mean(abs(predicted_purchases - actual_purchases)) as model_purchases_mae,
        repeatable_mean(abs(baseline_purchases - actual_purchases)) as baseline_purchases_mae,
        sqrt(repeatable_mean(power(predicted_purchases - actual_purchases, 2))) as model_purchases_rmse,
        sqrt(repeatable_mean(power(baseline_purchases - actual_purchases, 2))) as baseline_purchases_rmse,
        repeatable_mean(abs(predicted_value - actual_value)) as model_value_mae,
        repeatable_mean(abs(baseline_value - actual_value)) as baseline_value_mae,
        sqrt(repeatable_mean(power(predicted_value - actual_value, 2))) as model_value_rmse,
        sqrt(repeatable_mean(power(baseline_value - actual_value, 2))) as baseline_value_rmse
    from customers
),

-- One row per measure. The four errors come from one reference to errors: Spark inlines a CTE
-- wherever it is referenced, and would otherwise plan and compute its 8 aggregates once each.
measures as (
    select
        listed.position,
        listed.measure,
        case listed.position
            when 1 then errors.model_purchases_mae
            when 2 then errors.model_purchases_rmse
            when 3 then errors.model_value_mae
            else errors.model_value_rmse
        end as model,
        case listed.position
            when 1 then errors.baseline_purchases_mae
            when 2 then errors.baseline_purchases_rmse
            when 3 then errors.baseline_value_mae
            else errors.baseline_value_rmse
        end as baseline,
        errors.customers
    from errors
    cross join (
        values
            (1, 'repeat purchases: mean absolute error'),
            (2, 'repeat purchases: root mean square error'),
            (3, 'spend: mean absolute error'),
            (4, 'spend: root mean square error')
    ) as listed (position, measure)
    union all
    select
        5 as position,
        'total repeat purchases at the holdout end: relative error' as measure,
        final_period.model_error / nullif(final_period.actual_cumulative_purchases, 0) as model,
        final_period.baseline_error
        / nullif(final_period.actual_cumulative_purchases, 0) as baseline,
        counted.customers
    from (select count(*) as customers from customers) as counted
    left join final_period
        on true
)

select
    position,  -- The measure's place in the list
    measure,  -- What is measured over the calibration customers in the holdout
    model,  -- The value models' (fitted on calibration); null when they were not fitted
    baseline,  -- The naive baseline's (each customer keeps their calibration rate and mean value)
    abs(model) < abs(baseline) as model_is_better,  -- The models' error is the smaller
    customers  -- Calibration customers compared
from measures
order by position
