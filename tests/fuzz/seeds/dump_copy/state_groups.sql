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

COPY public.state_groups (id, room_id, event_id) FROM stdin;
1	!hRGFcyTOsbXnpilAHH:gen.test	$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
2	!hRGFcyTOsbXnpilAHH:gen.test	$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
3	!hRGFcyTOsbXnpilAHH:gen.test	$jrkfTqIsp8vPPlXEbzmc57b7pc2v7BUAvc6Si3FBvGE
4	!hRGFcyTOsbXnpilAHH:gen.test	$g9UZf_VkyrhNTglmhGfirQoaE5bXyTCv0jnP9i9-XF8
5	!hRGFcyTOsbXnpilAHH:gen.test	$psAJvepoYs5I9_O6-70pS4zyA-WzjSmLeOEOL9Yq5Z0
6	!hRGFcyTOsbXnpilAHH:gen.test	$Y_H_SID4V_ogsPQCMzmPis6bfoeHPDzyfdA96iJ6s1g
\.
