--
-- PostgreSQL database dump
--

\restrict m1YrNeJ48kdMjXzGwt6dqigRl7ubg29pWmszyobwnHtzp9vaCqMrsOe9vqefvSR

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;
2	!hRGFcyTOsbXnpilAHH:gen.test	m.room.create		$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
3	!hRGFcyTOsbXnpilAHH:gen.test	m.room.member	@user00000:gen.test	$jrkfTqIsp8vPPlXEbzmc57b7pc2v7BUAvc6Si3FBvGE
4	!hRGFcyTOsbXnpilAHH:gen.test	m.room.power_levels		$g9UZf_VkyrhNTglmhGfirQoaE5bXyTCv0jnP9i9-XF8
5	!hRGFcyTOsbXnpilAHH:gen.test	m.room.canonical_alias		$psAJvepoYs5I9_O6-70pS4zyA-WzjSmLeOEOL9Yq5Z0
6	!hRGFcyTOsbXnpilAHH:gen.test	m.room.join_rules		$Y_H_SID4V_ogsPQCMzmPis6bfoeHPDzyfdA96iJ6s1g
7	!hRGFcyTOsbXnpilAHH:gen.test	m.room.history_visibility		$uOw7_QltE-uD00YK0vN7qumTo_Q5ATvpRgRy0Imm044
\.
