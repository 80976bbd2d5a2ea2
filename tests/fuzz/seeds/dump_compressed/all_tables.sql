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

COPY public.event_to_state_groups (event_id, state_group) FROM stdin;
$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY	2
$jrkfTqIsp8vPPlXEbzmc57b7pc2v7BUAvc6Si3FBvGE	3
$g9UZf_VkyrhNTglmhGfirQoaE5bXyTCv0jnP9i9-XF8	4
\.
COPY public.state_group_edges (state_group, prev_state_group) FROM stdin;
2	1
3	2
4	3
\.
COPY public.state_groups (id, room_id, event_id) FROM stdin;
1	!hRGFcyTOsbXnpilAHH:gen.test	$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
2	!hRGFcyTOsbXnpilAHH:gen.test	$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
3	!hRGFcyTOsbXnpilAHH:gen.test	$jrkfTqIsp8vPPlXEbzmc57b7pc2v7BUAvc6Si3FBvGE
\.
COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;
2	!hRGFcyTOsbXnpilAHH:gen.test	m.room.create		$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY
3	!hRGFcyTOsbXnpilAHH:gen.test	m.room.member	@user00000:gen.test	$jrkfTqIsp8vPPlXEbzmc57b7pc2v7BUAvc6Si3FBvGE
4	!hRGFcyTOsbXnpilAHH:gen.test	m.room.power_levels		$g9UZf_VkyrhNTglmhGfirQoaE5bXyTCv0jnP9i9-XF8
\.
COPY public.access_tokens (id, user_id, device_id, token, valid_until_ms, puppets_user_id, last_validated, refresh_token_id, used) FROM stdin;
4	@user00000:gen.test	BHZGKVCUSI	syt_dXNlcjAwMDAw_dTQyHPfqxsRKctopvAcb_3K9Lbh	\N	\N	1795770113742	\N	t
2	@user00001:gen.test	OVDTKQPMIN	syt_dXNlcjAwMDAx_mQzdeZlObjNKzEksWwCc_13TqzU	\N	\N	1795770113730	\N	t
\.
