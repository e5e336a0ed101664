-- One row per segment: who is in it, what they look like, and how they compare with everyone.
-- An index of 100 means the segment's mean equals the population mean; 150 means 50% above it.
with

assignments as (
    select * from ml.customer_segments
),

customers as (
    select * from staging.stg_customers
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
        customers.gender,
        cast(customers.age as double) as age,
        customers.annual_income_k,
        cast(customers.spending_score as double) as spending_score
    from assignments
    inner join customers
        on assignments.customer_id = customers.customer_id
),

population as (
    select
        count(*) as population_customers,
        avg(age) as population_age,
        avg(annual_income_k) as population_income,
        avg(spending_score) as population_score
    from members
),

-- One list-valued quantile per column: each quantile aggregate keeps every value of its
-- group, so three separate ones per column would hold the column three times.
segment_summaries as (
    select
        segment_id,
        any_value(segment_name) as segment_name,
        count(*) as customers,
        avg(silhouette) as mean_silhouette,
        avg(age) as age_mean,
        quantile_cont(age, [0.25, 0.5, 0.75]) as age_quartiles,
        avg(annual_income_k) as annual_income_k_mean,
        quantile_cont(annual_income_k, [0.25, 0.5, 0.75]) as annual_income_k_quartiles,
        avg(spending_score) as spending_score_mean,
        quantile_cont(spending_score, [0.25, 0.5, 0.75]) as spending_score_quartiles,
        count(*) filter (where gender = 'Female') as female_customers,
        count(*) filter (where gender = 'Male') as male_customers
    from members
    group by segment_id
),

profiles as (
    select
        segment_id,
        segment_name,
        customers,
        mean_silhouette,
        age_mean,
        age_quartiles[1] as age_q1,
        age_quartiles[2] as age_median,
        age_quartiles[3] as age_q3,
        annual_income_k_mean,
        annual_income_k_quartiles[1] as annual_income_k_q1,
        annual_income_k_quartiles[2] as annual_income_k_median,
        annual_income_k_quartiles[3] as annual_income_k_q3,
        spending_score_mean,
        spending_score_quartiles[1] as spending_score_q1,
        spending_score_quartiles[2] as spending_score_median,
        spending_score_quartiles[3] as spending_score_q3,
        female_customers,
        male_customers
    from segment_summaries
)

select
    profiles.segment_id,  -- Stable segment id: kept across refreshes by matching centroids
    profiles.segment_name,  -- Readable name from the centroid against the population (overridable in config)
    profiles.customers,  -- Customers in the segment
    profiles.customers / population.population_customers as share,  -- Share of all segmented customers
    profiles.mean_silhouette,  -- Mean silhouette of the segment's customers (-1..1, higher is better separated)
    profiles.age_mean,
    profiles.age_q1,
    profiles.age_median,
    profiles.age_q3,
    100 * profiles.age_mean / population.population_age as age_index,  -- Mean age as a percentage of the population mean (100 = average)
    profiles.annual_income_k_mean,
    profiles.annual_income_k_q1,
    profiles.annual_income_k_median,
    profiles.annual_income_k_q3,
    100 * profiles.annual_income_k_mean / population.population_income as annual_income_k_index,  -- Mean income as a percentage of the population mean (100 = average)
    profiles.spending_score_mean,
    profiles.spending_score_q1,
    profiles.spending_score_median,
    profiles.spending_score_q3,
    100 * profiles.spending_score_mean / population.population_score as spending_score_index,  -- Mean spending score as a percentage of the population mean (100 = average)
    profiles.female_customers,
    profiles.male_customers,
    profiles.female_customers / profiles.customers as female_share,  -- Share of the segment's customers who are female
    count(*) over () as segments_in_run,  -- Number of segments in this refresh
    selection.chosen_k,  -- The k chosen in ml.segment_model_selection
    selection.selection_rule  -- The rule that chose k
from profiles
cross join population
cross join selection
order by profiles.segment_id
