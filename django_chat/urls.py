from django.urls import path

from django_chat.chat import views

urlpatterns = [
    path("healthz", views.healthz),
    path("stats", views.stats),
]
