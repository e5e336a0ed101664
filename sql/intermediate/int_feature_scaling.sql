-- How each configured modelling feature is scaled: value_scaled = (transformed value - center) / scale.
-- Kept as a table so Python models and SQL scorers apply exactly the same transformation.
with

customers as (
    select * from intermediate.int_customer_profiles
    where is_segmented
),

-- transformed(): the feature's configured transform (features.transforms), as a double.
long_values as (
    unpivot (
        select
            customer_id,
            each(features, transformed(_) as _)
        from customers
    )
    on each(features, _)
    into name feature value feature_value
),

configured as (
    select feature, position, scaling, transform, label, unit from config.features
),

-- Summed in customer order: DuckDB's parallel aggregation would otherwise change the last
-- digits of the mean and SD (and so of every scaled value) from one run to the next.
stats as (
    select
        feature,
        avg(feature_value order by customer_id) as mean_value,
        stddev_pop(feature_value order by customer_id) as stddev_value,
        min(feature_value) as min_value,
        max(feature_value) as max_value
    from long_values
    group by feature
)

select
    configured.feature,  -- A modelling feature (features.columns)
    configured.position,  -- Its place in the feature list, from 1
    configured.scaling,  -- standard, minmax or none (features.scaling)
    case configured.scaling
        when 'standard' then stats.mean_value
        when 'minmax' then stats.min_value
        else 0.0
    end as center,  -- Subtracted before dividing by scale: the mean (standard), the minimum (minmax) or 0
    -- A constant feature keeps scale 1 so it scales to zero instead of dividing by zero.
    case
        when configured.scaling = 'standard' and stats.stddev_value > 0 then stats.stddev_value
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
