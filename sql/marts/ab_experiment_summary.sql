-- The one-line answer per experiment, with how its segments came out.
with

results as (
    select * from ml.ab_segment_results
),

overall as (
    select * from results where scope = 'all'
),

segments as (
    select
        experiment,
        count(*) as segments_analysed,
        count(*) filter (where decision = 'ship') as segments_ship,
        count(*) filter (where decision = 'don''t ship') as segments_dont_ship,
        count(*) filter (where decision = 'inconclusive') as segments_inconclusive,
        count(*) filter (where srm_flag) as segments_with_srm,
        string_agg(segment_name, ', ' order by segment_id) filter (where decision = 'ship')
            as segments_to_ship
    from results
    where scope = 'segment'
    group by experiment
)

select
    overall.experiment,
    overall.metric,
    overall.source,
    case
        when overall.source in ('log', 'audience') then overall.decision
        when overall.decision = 'ship' then 'simulated: would ship'
        when overall.decision = 'don''t ship' then 'simulated: would not ship'
        else 'simulated: ' || overall.decision
    end as decision,  -- ship / don't ship / inconclusive / invalid (sample-ratio mismatch); a simulated experiment's says so: 'simulated: would ship'

    overall.decision_reason,  -- Why, in words
    overall.users_control + overall.users_treatment as users,  -- Users in the experiment, both arms
    overall.mean_control,
    overall.mean_treatment,
    overall.absolute_lift,  -- Treatment minus control (rate points or amount)
    overall.lift_ci_low,  -- Lower bound of the lift's confidence interval
    overall.lift_ci_high,  -- Upper bound of the lift's confidence interval
    overall.relative_lift,
    overall.p_value,  -- Welch t-test (amounts) or two-proportion test (conversions)
    overall.cuped_lift,  -- Lift adjusted for the pre-period value (CUPED)
    overall.variance_reduction,  -- Share of outcome variance removed by CUPED
    overall.achieved_power,  -- Power to detect the planned effect at this size
    overall.mde,  -- Minimum detectable effect at this size
    overall.srm_p_value,  -- Sample-ratio mismatch chi-square p-value (below 0.001 invalidates)
    overall.heterogeneity_p_value,  -- Cochran's Q p-value: do effects differ across segments?
    overall.true_effect,  -- For simulations: the true effect the outcomes were drawn with
    segments.segments_analysed,  -- Segments with a result row
    segments.segments_ship,  -- Segments whose decision is ship
    segments.segments_dont_ship,  -- Segments whose decision is don't ship
    segments.segments_inconclusive,  -- Segments whose decision is inconclusive
    segments.segments_with_srm,  -- Segments with a sample-ratio mismatch
    segments.segments_to_ship  -- The segments to ship, by name
from overall
left join segments
    on overall.experiment = segments.experiment
order by overall.experiment
