import secrets

from django.db import migrations, models

ROUTING_TABLES = ("workflow_roles", "workflow_workflows", "workflow_steps")
VERSION_TABLE = "workflow_routingversion"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION workflow_routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {VERSION_TABLE} (id, version) VALUES (1, floor(random() * 9.0e18)::bigint)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END $$
"""


def install_triggers(apps, schema_editor) -> None:
    # Routes are cached on PostgreSQL only (workflow.selectors.ticket_route):
    # elsewhere nothing reads the version, and SQLite drops a table's triggers
    # whenever a migration rebuilds the table.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_FUNCTION)
        for table in ROUTING_TABLES:
            # Per statement, TRUNCATE included: one change however many rows.
            schema_editor.execute(
                f"CREATE TRIGGER {table}_routing_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION workflow_routing_changed()"
            )
    RoutingVersion = apps.get_model("workflow", "RoutingVersion")
    RoutingVersion.objects.using(schema_editor.connection.alias).create(id=1, version=secrets.randbits(62))


def remove_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for table in ROUTING_TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_routing_changed ON {table}")
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
