-- The shape of the data in one select: what pandas' describe() showed in the original notebook,
-- plus gender mix, pairwise correlations and why rows were rejected.
-- Read it with: select * from marts.eda_profile order by section_order, subject, statistic_order
with

customers as (
    select * from staging.stg_customers
),

rejected as (
    select * from staging.stg_customers_rejected
),

long_values as (
    unpivot (
        select
            cast(age as double) as age,
            cast(annual_income_k as double) as annual_income_k,
            cast(spending_score as double) as spending_score
        from customers
    )
    on age, annual_income_k, spending_score
    into name feature value feature_value
),

-- One list-valued quantile: separate quantile aggregates would each hold every value.
feature_summaries as (
    select
        feature,
        count(feature_value) as n,
        avg(feature_value) as mean_value,
        stddev_samp(feature_value) as std_value,
        min(feature_value) as min_value,
        quantile_cont(feature_value, [0.25, 0.5, 0.75]) as quartiles,
        max(feature_value) as max_value
    from long_values
    group by feature
),

numeric_summary as (
    select
        feature,
        n,
        mean_value,
        std_value,
        min_value,
        quartiles[1] as q1_value,
        quartiles[2] as median_value,
        quartiles[3] as q3_value,
        max_value
    from feature_summaries
),

numeric_rows as (
    unpivot numeric_summary
    on
        cast(n as double) as "count",
        mean_value as "mean",
        std_value as "std",
        min_value as "min",
        q1_value as "25%",
        median_value as "50%",
        q3_value as "75%",
        max_value as "max"
    into name statistic value statistic_value
),

gender_counts as (
    select gender, count(*) as n
    from customers
    group by gender
),

gender_rows as (
    select gender as subject, 'count' as statistic, 1 as statistic_order, cast(n as double) as value
    from gender_counts
    union all
    select gender, 'share', 2, n / sum(n) over ()
    from gender_counts
),

correlation_rows as (
    select 'age ~ annual_income_k' as subject, corr(age, annual_income_k) as value
    from customers
    union all
    select 'age ~ spending_score', corr(age, spending_score)
    from customers
    union all
    select 'annual_income_k ~ spending_score', corr(annual_income_k, spending_score)
    from customers
),

rejected_reasons as (
    select
        -- Group by the kind of reason, not the value that broke it.
        regexp_replace(reason, '''[^'']*''|-?[0-9][0-9.e+-]*', '…', 'g') as subject,
        count(*) as n
    from rejected, unnest(reasons) as reason_list(reason)
    group by subject
)

select
    1 as section_order,
    'numeric' as section,
    feature as subject,
    statistic,
    list_position(
        ['count', 'mean', 'std', 'min', '25%', '50%', '75%', 'max'], statistic
    ) as statistic_order,
    statistic_value as value
from numeric_rows
union all
select 2, 'gender', subject, statistic, statistic_order, value
from gender_rows
union all
select 3, 'correlation', subject, 'pearson', 1, value
from correlation_rows
union all
select 4, 'rejected', subject, 'rows', 1, cast(n as double)
from rejected_reasons
order by section_order, subject, statistic_order
