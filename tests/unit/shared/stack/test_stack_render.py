"""Config files rendered for Kafka, Redis and PostgreSQL (pure functions)."""

from __future__ import annotations

import base64
from pathlib import Path

from shared.stack.kafka import new_cluster_id, render_log4j2, render_pom, render_server_properties
from shared.stack.postgres import bootstrap_sql, quote_ident, quote_literal
from shared.stack.redis import render_redis_conf
from shared.stack.settings import StackSettings


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_single_node_kraft() -> None:
    settings = StackSettings(kafka_port=29092, kafka_controller_port=29093)
    props = _props(render_server_properties(settings, Path("/s/kafka/data")))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == "/s/kafka/data"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "3"


def test_log4j2_writes_only_to_the_file() -> None:
    text = render_log4j2(Path("/s/logs/kafka.log"))
    assert "appender.file.fileName = /s/logs/kafka.log" in text
    assert "Console" not in text
    assert "rootLogger.appenderRef.file.ref = FILE" in text


def test_pom_pins_kafka_and_the_slf4j_binding() -> None:
    pom = render_pom("4.1.0")
    assert "<artifactId>kafka_2.13</artifactId>\n      <version>4.1.0</version>" in pom
    assert "log4j-slf4j-impl" in pom


def test_cluster_id_is_a_kafka_uuid() -> None:
    for _ in range(50):
        cid = new_cluster_id()
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_redis_conf_binds_locally_without_persistence() -> None:
    settings = StackSettings(redis_port=26379)
    conf = render_redis_conf(settings, Path("/s/redis data"), Path("/s/logs/redis.log"), Path("/s/redis/r.pid"))
    lines = conf.splitlines()
    assert "bind 127.0.0.1" in lines
    assert "port 26379" in lines
    assert 'save ""' in lines
    assert "appendonly no" in lines
    assert 'dir "/s/redis data"' in lines
    assert "daemonize no" in lines


def test_sql_quoting() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"


def test_bootstrap_sql_is_idempotent_and_quoted() -> None:
    sql = bootstrap_sql("app", "pa'ss", "app db")
    assert "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app')" in sql
    assert "ALTER ROLE \"app\" WITH LOGIN CREATEDB PASSWORD 'pa''ss';" in sql
    assert 'GRANT pg_signal_backend TO "app";' in sql
    assert 'CREATE DATABASE ""app db"" OWNER ""app""' not in sql
    assert 'SELECT \'CREATE DATABASE "app db" OWNER "app"\'' in sql
    assert sql.rstrip().endswith("\\gexec")


def test_server_properties_bracket_an_ipv6_host() -> None:
    settings = StackSettings(host="::1", kafka_port=29092, kafka_controller_port=29093)
    props = _props(render_server_properties(settings, Path("/s/kafka/data")))
    assert props["listeners"] == "PLAINTEXT://[::1]:29092,CONTROLLER://[::1]:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://[::1]:29092"
    assert props["controller.quorum.voters"] == "1@[::1]:29093"
