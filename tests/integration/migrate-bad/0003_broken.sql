-- t_three must not survive: the failure on line 5 rolls the whole file back.
-- ééééééééééééééééééééééééééééééééééééééééééééééééé (lines count characters)
CREATE TABLE t_three (id int PRIMARY KEY);
INSERT INTO t_three VALUES (1);
INSERT INTO no_such_table VALUES (1);
