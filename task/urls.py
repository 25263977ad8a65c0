from rest_framework.routers import DefaultRouter

from task.views import AvailabilityViewSet, TaskViewSet

router = DefaultRouter()
router.register("tasks", TaskViewSet, basename="task")
router.register("availability", AvailabilityViewSet, basename="availability")

urlpatterns = router.urls
