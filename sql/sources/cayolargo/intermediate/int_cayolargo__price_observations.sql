-- int_cayolargo__price_observations: CayøLargo's rows in int_price_observations' shape (its
-- snapshots without the carry inputs, which int_cayolargo__carry_observations carries).
select * exclude (funding_rate, funding_interval_hours, open_interest, contract_size)
from staging.stg_cayolargo__futures
