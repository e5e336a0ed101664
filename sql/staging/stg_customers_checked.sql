-- Every raw customer row, typed, with every reason it cannot be staged.
-- stg_customers, stg_customers_rejected and stg_customers_reconciliation all read this one model,
-- so the three can never disagree about which row went where.
with

raw_rows as (
    select * from raw.customers
),

ranges as (
    select
        max(case when column_name = 'age' then min_value end) as age_min,
        max(case when column_name = 'age' then max_value end) as age_max,
        max(case when column_name = 'annual_income_k' then min_value end) as income_min,
        max(case when column_name = 'annual_income_k' then max_value end) as income_max,
        max(case when column_name = 'spending_score' then min_value end) as score_min,
        max(case when column_name = 'spending_score' then max_value end) as score_max
    from config.value_ranges
),

genders as (
    select spelling, value
    from config.accepted_values
    where column_name = 'gender'
),

typed as (
    select
        raw_rows._source_file as source_file,
        raw_rows._line_number as line_number,
        raw_rows._parse_error as parse_error,
        nullif(trim(raw_rows.customer_id), '') as customer_id_text,
        nullif(trim(raw_rows.gender), '') as gender_text,
        nullif(trim(raw_rows.age), '') as age_text,
        nullif(trim(raw_rows.annual_income_k), '') as annual_income_k_text,
        nullif(trim(raw_rows.spending_score), '') as spending_score_text,
        try_cast(nullif(trim(raw_rows.customer_id), '') as bigint) as customer_id,
        genders.value as gender,
        try_cast(nullif(trim(raw_rows.age), '') as integer) as age,
        try_cast(nullif(trim(raw_rows.annual_income_k), '') as double) as annual_income_k,
        try_cast(nullif(trim(raw_rows.spending_score), '') as integer) as spending_score
    from raw_rows
    left join genders
        on lower(trim(raw_rows.gender)) = genders.spelling
),

row_checks as (
    select
        typed.*,
        list_filter(
            [
                case when parse_error is not null then 'malformed row: ' || parse_error end,
                case
                    when customer_id_text is null then 'customer_id is missing'
                    when customer_id is null
                        then 'customer_id ''' || customer_id_text || ''' is not an integer'
                end,
                case
                    when gender_text is null then 'gender is missing'
                    when gender is null
                        then 'gender ''' || gender_text || ''' is not an accepted value'
                end,
                case
                    when age_text is null then 'age is missing'
                    when age is null then 'age ''' || age_text || ''' is not a whole number'
                    when age < ranges.age_min or age > ranges.age_max
                        then 'age ' || age || ' is outside ['
                            || ranges.age_min || ', ' || ranges.age_max || ']'
                end,
                case
                    when annual_income_k_text is null then 'annual_income_k is missing'
                    when annual_income_k is null or not isfinite(annual_income_k)
                        then 'annual_income_k ''' || annual_income_k_text || ''' is not a number'
                    when annual_income_k < ranges.income_min or annual_income_k > ranges.income_max
                        then 'annual_income_k ' || annual_income_k || ' is outside ['
                            || ranges.income_min || ', ' || ranges.income_max || ']'
                end,
                case
                    when spending_score_text is null then 'spending_score is missing'
                    when spending_score is null
                        then 'spending_score ''' || spending_score_text || ''' is not a whole number'
                    when spending_score < ranges.score_min or spending_score > ranges.score_max
                        then 'spending_score ' || spending_score || ' is outside ['
                            || ranges.score_min || ', ' || ranges.score_max || ']'
                end
            ],
            reason -> reason is not null
        ) as row_reasons
    from typed
    cross join ranges
),

-- Among rows that pass the row checks, one customer id must carry one set of values, and the
-- first copy (by file and line) is the one kept. Only ids seen more than once can break either
-- rule, so only their rows are aggregated (a few percent of the rows at most) and joined back:
-- cheaper than windows sorting every row by id, or an aggregate state for every id.
valid_rows as (
    select customer_id, source_file, line_number, gender, age, annual_income_k, spending_score
    from row_checks
    where len(row_reasons) = 0
),

repeated_ids as (
    select customer_id
    from valid_rows
    group by customer_id
    having count(*) > 1
),

valid_ids as (
    select
        valid_rows.customer_id,
        min({'g': gender, 'a': age, 'i': annual_income_k, 's': spending_score})
            is distinct from
            max({'g': gender, 'a': age, 'i': annual_income_k, 's': spending_score})
            as has_conflict,
        min({'f': source_file, 'l': line_number}) as first_copy
    from valid_rows
    inner join repeated_ids
        on valid_rows.customer_id = repeated_ids.customer_id
    group by valid_rows.customer_id
),

id_checks as (
    select
        row_checks.*,
        len(row_checks.row_reasons) = 0 as row_is_valid,
        coalesce(len(row_checks.row_reasons) = 0 and valid_ids.has_conflict, false)
            as has_conflict,
        coalesce(
            len(row_checks.row_reasons) = 0
            and {'f': row_checks.source_file, 'l': row_checks.line_number}
            <> valid_ids.first_copy,
            false
        ) as is_later_copy
    from row_checks
    left join valid_ids
        on row_checks.customer_id = valid_ids.customer_id
)

select
    source_file,
    line_number,
    customer_id,
    gender,
    age,
    annual_income_k,
    spending_score,
    customer_id_text,
    gender_text,
    age_text,
    annual_income_k_text,
    spending_score_text,
    case
        when has_conflict
            then list_append(
                row_reasons,
                'customer_id ' || customer_id || ' appears with conflicting values'
            )
        else row_reasons
    end as reasons,
    row_is_valid and not has_conflict and is_later_copy as is_collapsed_duplicate
from id_checks
