from django.core.management.base import BaseCommand

from tickets import tasks


class Command(BaseCommand):
    help = "Re-enqueue allocation for tickets whose task creation failed transiently or never ran."

    def handle(self, *args, **options) -> None:
        result = tasks.allocate_pending_tickets.apply().get()
        self.stdout.write(f"Enqueued allocation for {result['enqueued']} ticket(s).")
