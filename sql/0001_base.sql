-- SPDX-License-Identifier: AGPL-3.0-or-later
-- Extensions the schema builds on. citext: case-insensitive e-mail addresses
-- and names (a trusted extension: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS citext;
