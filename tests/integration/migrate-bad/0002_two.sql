-- Several statements, one with a quote ' and a backslash \ in a literal.
CREATE TABLE t_two (id int PRIMARY KEY, note text);
INSERT INTO t_two VALUES (1, 'it''s a \ backslash, ünïcode');
