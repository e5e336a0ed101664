-- The shape of the data in one select: what pandas' describe() showed in the original notebook,
-- plus each categorical attribute's mix (its name is the section), pairwise correlations of the
-- features and why customer rows and order lines were rejected.
-- Read it with: select * from marts.eda_profile order by section_order, subject, statistic_order
with

customers as (
    select * from intermediate.int_customer_features
),

rejected as (
    select * from staging.stg_customers_rejected
),

rejected_lines as (
    select * from staging.stg_transactions_rejected
),

long_values as (
    unpivot (
        select each(features, cast(_ as double) as _)
        from customers
    )
    on each(features, _)
    into name feature value feature_value
),

-- One list-valued quantile: separate quantile aggregates would each hold every value.
-- repeatable_mean() and repeatable_sum(): avg() and sum() whose last digits do not change from
-- run to run (macros.py); the SD and the correlations are summed around the means for that.
feature_summaries as (
    select
        feature,
        count(feature_value) as n,
        min(feature_value) as min_value,
        quantile_cont(feature_value, [0.25, 0.5, 0.75]) as quartiles,
        max(feature_value) as max_value
    from long_values
    group by feature
),

feature_means as (
    select each(features, repeatable_mean(_) as _)
    from customers
),

-- The same means as rows, for the summary: each mean is computed once.
mean_values as (
    unpivot feature_means
    on each(features, _)
    into name feature value mean_value
),

-- In one pass: per feature, the sum of the squared deviations from its mean; per pair of
-- features, the sum of the products of their deviations.
deviation_sums as (
    select
        each(features, repeatable_sum(power(customers._ - means._, 2)) as _),
        each(
            feature_pairs,
            repeatable_sum((customers._1 - means._1) * (customers._2 - means._2)) as "_"
        )
    from customers
    cross join feature_means as means
),

squared_deviations as (
    unpivot (
        select each(features, _)
        from deviation_sums
    )
    on each(features, _)
    into name feature value squares
),

numeric_summary as (
    select
        feature_summaries.feature,
        cast(n as double) as n,  -- a double like the other statistics: UNPIVOT puts them in one column
        mean_values.mean_value,
        sqrt(squared_deviations.squares / nullif(n - 1, 0)) as std_value,
        min_value,
        quartiles[1] as q1_value,
        quartiles[2] as median_value,
        quartiles[3] as q3_value,
        max_value
    from feature_summaries
    inner join mean_values
        on feature_summaries.feature = mean_values.feature
    inner join squared_deviations
        on feature_summaries.feature = squared_deviations.feature
),

numeric_rows as (
    unpivot numeric_summary
    on
        n as "count",
        mean_value as "mean",
        std_value as "std",
        min_value as "min",
        q1_value as "25%",
        median_value as "50%",
        q3_value as "75%",
        max_value as "max"
    into name statistic value statistic_value
),

-- One (attribute, value) pair per customer and categorical attribute (pipeline.toml).
attribute_values as (
    select
        unnest(
            cast(
                [each(profile_categories, {'attribute': '_', 'value': cast(_ as varchar)})]
                as struct(attribute varchar, value varchar)[]
            )
        ) as pair
    from customers
),

attribute_counts as (
    select pair.attribute as attribute, pair.value as value, count(*) as n
    from attribute_values
    group by attribute, value
),

attribute_rows as (
    select attribute, value as subject, 'count' as statistic, 1 as statistic_order,
        cast(n as double) as value
    from attribute_counts
    union all
    select attribute, value, 'share', 2, n / sum(n) over (partition by attribute)
    from attribute_counts
),

-- Pearson's r: the sum of the deviations' products over the root of their squares' sums.
correlations as (
    select each(feature_pairs, sums."_" / sqrt(sums._1 * sums._2) as "_")
    from deviation_sums as sums
),

correlation_rows as (
    unpivot correlations
    on each(feature_pairs, "_")
    into name subject value value
),

-- Customer rows and order lines, each under its section; grouped by the kind of reason, not
-- the value that broke it.
rejected_reasons as (
    select
        section,
        regexp_replace(reason, '''[^'']*''|-?[0-9][0-9.e+-]*', '…', 'g') as subject,
        count(*) as n
    from (
        select 'rejected' as section, reasons from rejected
        union all
        select 'rejected order lines' as section, reasons from rejected_lines
    ) as both_sources, unnest(reasons) as reason_list(reason)
    group by section, subject
)

select
    1 as section_order,  -- 1 numeric, 2 a categorical attribute, 3 correlation, 4 rejected customer rows, 5 rejected order lines
    'numeric' as section,  -- numeric, the attribute's name, correlation, rejected or rejected order lines
    feature as subject,  -- The feature, the attribute's value, the pair of features or the kind of reason
    statistic,  -- count, mean, std, min, 25%, 50%, 75%, max; count or share; pearson; rows or lines
    list_position(
        ['count', 'mean', 'std', 'min', '25%', '50%', '75%', 'max'], statistic
    ) as statistic_order,  -- Orders the statistics as pandas' describe() does
    statistic_value as value  -- The statistic's value
from numeric_rows
union all
select 2, attribute, subject, statistic, statistic_order, value
from attribute_rows
union all
select 3, 'correlation', subject, 'pearson', 1, value
from correlation_rows
union all
select
    case section when 'rejected' then 4 else 5 end,
    section,
    subject,
    case section when 'rejected' then 'rows' else 'lines' end,
    1,
    cast(n as double)
from rejected_reasons
order by section_order, subject, statistic_order
