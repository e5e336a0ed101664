-- How each configured modelling feature is scaled: value_scaled = (transformed value - center) / scale.
-- Kept as a table so Python models and SQL scorers apply exactly the same transformation.
with

customers as (
    select * from intermediate.int_customer_profiles
    where is_segmented
),

-- transformed(): the feature's configured transform (features.transforms), as a double.
transformed_values as (
    select each(features, transformed(_) as _)
    from customers
),

-- repeatable_mean(): avg() whose last digits do not change from run to run (macros.py), so
-- that every scaled value, and so the segments, are the same in every run.
summaries as (
    select each(features, repeatable_mean(_) as _mean, min(_) as _min, max(_) as _max)
    from transformed_values
),

-- The population SD, summed around the means in a second pass.
standard_deviations as (
    select
        each(features, sqrt(repeatable_mean(power(transformed_values._ - summaries._mean, 2))) as _)
    from transformed_values
    cross join summaries
),

mean_values as (unpivot summaries on each(features, _mean as _) into name feature value mean_value),
min_values as (unpivot summaries on each(features, _min as _) into name feature value min_value),
max_values as (unpivot summaries on each(features, _max as _) into name feature value max_value),
stddev_values as (
    unpivot standard_deviations on each(features, _) into name feature value stddev_value
),

configured as (
    select feature, position, scaling, transform, label, unit from config.features
),

stats as (
    select
        mean_values.feature,
        mean_values.mean_value,
        stddev_values.stddev_value,
        min_values.min_value,
        max_values.max_value
    from mean_values
    inner join stddev_values on mean_values.feature = stddev_values.feature
    inner join min_values on mean_values.feature = min_values.feature
    inner join max_values on mean_values.feature = max_values.feature
)

select
    configured.feature,  -- A modelling feature (features.columns)
    configured.position,  -- Its place in the feature list, from 1
    configured.scaling,  -- standard, minmax or none (features.scaling)
    -- A constant feature is centred on its value, which its summed mean may miss by an ulp.
    case
        when configured.scaling = 'standard' and stats.max_value > stats.min_value
            then stats.mean_value
        when configured.scaling in ('standard', 'minmax') then stats.min_value
        else 0.0
    end as center,  -- Subtracted before dividing by scale: the mean (standard), the minimum (minmax) or 0
    -- A constant feature keeps scale 1 so it scales to zero instead of dividing by zero.
    case
        when configured.scaling = 'standard' and stats.max_value > stats.min_value
            then stats.stddev_value
        when configured.scaling = 'minmax' and stats.max_value > stats.min_value
            then stats.max_value - stats.min_value
        else 1.0
    end as scale,  -- The population SD (standard), the range (minmax) or 1; 1 for a constant feature
    configured.transform,  -- Applied before scaling: log1p (ln(1 + x)) or none
    configured.label,  -- How the report and segment names call the feature
    configured.unit  -- The unit its values are in (features.units); empty: none
from configured
inner join stats
    on configured.feature = stats.feature
order by configured.position
