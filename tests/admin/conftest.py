import pytest
from django.contrib.auth.models import User


@pytest.fixture
def superuser_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    return client
