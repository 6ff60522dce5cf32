DROP TABLE second_factor_enrollments;
