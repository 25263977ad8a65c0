from django.db import migrations, models

ROUTING_TABLES = ("workflow_roles", "workflow_workflows", "workflow_steps")
VERSION_TABLE = "workflow_routingversion"

POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION workflow_routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {VERSION_TABLE} (id, version) VALUES (1, floor(random() * 9.0e18)::bigint)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END $$
"""


def install_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        for table in ROUTING_TABLES:
            # Per statement, TRUNCATE included: one bump however many rows changed.
            schema_editor.execute(
                f"CREATE TRIGGER {table}_routing_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION workflow_routing_changed()"
            )
    elif vendor == "sqlite":
        for table in ROUTING_TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_routing_changed_{event.lower()} AFTER {event} ON {table} "
                    f"BEGIN INSERT OR REPLACE INTO {VERSION_TABLE} (id, version) VALUES (1, random()); END"
                )
    else:
        raise NotImplementedError(f"routing version triggers are written for PostgreSQL and SQLite, not {vendor}")
    schema_editor.execute(f"INSERT INTO {VERSION_TABLE} (id, version) VALUES (1, 0)")


def remove_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for table in ROUTING_TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_routing_changed ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_routing_changed_{event}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS workflow_routing_changed()")


class Migration(migrations.Migration):
    dependencies = [
        ("workflow", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RoutingVersion",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("version", models.BigIntegerField()),
            ],
            options={
                "verbose_name": "routing version",
            },
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
