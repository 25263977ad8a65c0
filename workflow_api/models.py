from django.db import models


class MetricCounter(models.Model):
    """A counter's total over every process and machine: each process adds its counts every few seconds."""

    name = models.CharField(max_length=100)
    # The Prometheus label set as rendered, e.g. 'outcome="created"'; blank for none.
    labels = models.CharField(max_length=200, blank=True)
    value = models.FloatField(default=0)

    class Meta:
        verbose_name = "metric counter"
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="one_row_per_counter")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"
