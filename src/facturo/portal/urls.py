from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.invoice_page, name="invoice"),
    path("<str:token>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("<str:token>/pay/", views.pay_online, name="pay"),
]
