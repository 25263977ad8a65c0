from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL: tasks keep being written while a large table is indexed.

    Elsewhere (SQLite, local use) a plain index, as AddIndex makes it.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ('task', '0007_report_indexes'),
        ('tickets', '0006_list_index'),
        ('workflow', '0006_help_texts'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='task',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'in_progress'])), fields=['-task_id', 'step_due_at'], name='task_open_due_idx'),
        ),
    ]
