from rest_framework.routers import DefaultRouter

from workflow.views import RoleViewSet, StepViewSet, WorkflowViewSet

router = DefaultRouter()
router.register("roles", RoleViewSet, basename="role")
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("steps", StepViewSet, basename="step")

urlpatterns = router.urls
