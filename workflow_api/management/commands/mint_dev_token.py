from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from workflow_api.authentication import mint_token


class Command(BaseCommand):
    help = (
        "Print a JWT this service accepts, signed with JWT_SIGNING_KEY: for development and demos. "
        'Example: curl -H "Authorization: Bearer $(python manage.py mint_dev_token --user-id 3)" ...'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user-id", type=int, required=True, help="The caller's user id (claim user_id)."
        )
        parser.add_argument("--admin", action="store_true", help="Mark the caller as staff (claim is_staff).")
        parser.add_argument("--minutes", type=int, default=60, help="Lifetime of the token (default 60).")

    def handle(self, *args, user_id: int, admin: bool, minutes: int, **options) -> None:
        token = mint_token(user_id=user_id, is_staff=admin, lifetime=timedelta(minutes=minutes))
        self.stdout.write(token)
