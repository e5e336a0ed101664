-- The landing CSVs, typed; a row whose id or features do not type is left out.
with

raw_rows as (
    select * from read_csv('{{ var("raw_customers") }}', all_varchar = true, header = true)
),

typed as (
    select
        try_cast(trim("CustomerID") as bigint) as customer_id,
        trim("Gender") as gender,
        try_cast(trim("Age") as double) as age,
        try_cast(trim("Annual Income (k$)") as double) as annual_income_k,
        try_cast(trim("Spending Score (1-100)") as double) as spending_score
    from raw_rows
)

select *
from typed
where customer_id is not null
    and age is not null
    and annual_income_k is not null
    and spending_score is not null
