-- One row per segment: who is in it, what its features look like, and how they compare with
-- everyone. An index of 100 means the segment's mean equals the population mean; 150 means 50%
-- above it. Per-segment shares of the categorical attributes are in dim_segment_attributes.
-- repeatable_mean(): an avg() whose last digits do not change from run to run (macros.py).
with

assignments as (
    select * from ml.customer_segments
),

customers as (
    select * from intermediate.int_customer_features
),

selection as (
    select k as chosen_k, selection_rule
    from ml.segment_model_selection
    where is_chosen
),

members as (
    select
        assignments.segment_id,
        assignments.segment_name,
        assignments.silhouette,
        each(features, cast(customers._ as double) as _)
    from assignments
    inner join customers
        on assignments.customer_id = customers.customer_id
),

-- Everyone segmented: ml.customer_segments gives each customer of the features one segment, so
-- the population is read from the features, and the join above is read once (a join read twice
-- is held whole: at 10M customers the model took 3.3 s against 2.6 s).
population as (
    select
        count(*) as population_customers,
        each(features, repeatable_mean(cast(_ as double)) as _population_mean)
    from customers
),

-- One list-valued quantile per column: each quantile aggregate keeps every value of its
-- group, so three separate ones per column would hold the column three times.
segment_summaries as (
    select
        segment_id,
        any_value(segment_name) as segment_name,
        count(*) as customers,
        repeatable_mean(silhouette) as mean_silhouette,
        each(features, repeatable_mean(_) as _mean, quantile_cont(_, [0.25, 0.5, 0.75]) as _quartiles)
    from members
    group by segment_id
)

select
    segment_summaries.segment_id,  -- Stable segment id: kept across refreshes by matching centroids
    segment_summaries.segment_name,  -- Readable name from the centroid against the population (overridable in config)
    segment_summaries.customers,  -- Customers in the segment
    segment_summaries.customers / population.population_customers as share,  -- Share of all segmented customers
    segment_summaries.mean_silhouette,  -- Mean silhouette of the segment's customers (-1..1, higher is better separated)
    each(
        features,
        segment_summaries._mean,  -- Mean {label} in the segment
        segment_summaries._quartiles[1] as _q1,  -- First quartile of {label} in the segment
        segment_summaries._quartiles[2] as _median,  -- Median {label} in the segment
        segment_summaries._quartiles[3] as _q3,  -- Third quartile of {label} in the segment
        100 * segment_summaries._mean / population._population_mean as _index  -- Mean {label} as a percentage of the population mean (100 = average)
    ),
    count(*) over () as segments_in_run,  -- Number of segments in this refresh
    selection.chosen_k,  -- The k chosen in ml.segment_model_selection
    selection.selection_rule  -- The rule that chose k
from segment_summaries
cross join population
cross join selection
order by segment_summaries.segment_id
