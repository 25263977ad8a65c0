from rest_framework.routers import DefaultRouter

from tickets.views import WorkflowTicketViewSet

router = DefaultRouter()
router.register("tickets", WorkflowTicketViewSet, basename="ticket")

urlpatterns = router.urls
