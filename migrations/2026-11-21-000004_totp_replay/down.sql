ALTER TABLE second_factors DROP COLUMN last_totp_step;
