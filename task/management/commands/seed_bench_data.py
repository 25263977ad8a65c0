import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from task import seeding


class Command(BaseCommand):
    help = (
        "Fill the database with N allocated tickets and their tasks on the bench workflow, for benchmarks "
        "(PostgreSQL). Refuses a database that holds tasks unless --append."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", type=int, required=True, help="How many tickets with tasks to add.")
        parser.add_argument("--users", type=int, required=True, help="Assignees are users 1..USERS.")
        parser.add_argument("--assignees", type=int, default=3, help="Assignees per task (default 3).")
        parser.add_argument("--append", action="store_true", help="Add to a database that holds tasks.")
        parser.add_argument(
            "--per-day",
            type=int,
            default=seeding.TICKETS_PER_DAY,
            help=f"Tickets a day, the newest now (default {seeding.TICKETS_PER_DAY}).",
        )

    def handle(
        self, *args, tasks: int, users: int, assignees: int, append: bool, per_day: int, **options
    ) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"{done:,} / {total:,} tasks ({time.monotonic() - started:.1f} s)")

        try:
            result = seeding.seed_bench_data(
                tasks=tasks,
                users=users,
                assignees=assignees,
                append=append,
                per_day=per_day,
                progress=progress,
            )
        except seeding.SeedRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.tasks:,} tasks ({result.first_task_id}..{result.last_task_id}) "
                f"on workflow {result.workflow_id} in {time.monotonic() - started:.1f} s, analyzed"
            )
        )
