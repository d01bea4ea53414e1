-- Test set for migrate.sh: the third migration fails half-way.
CREATE TABLE t_one (id int PRIMARY KEY);
