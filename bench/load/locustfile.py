"""The shop's load generator: simulated shoppers walking the flows of the reference's load generator through the
web tier, as the reference load generator did (same requests, same order, same headers), so the
shop can be loaded the way courses and demos load RoboShop.

Environment: HOST (front door, default http://localhost:8080), ERROR=1 adds the failing payment
task, SILENT=1 stops the per-order log lines.

Each simulated user's client keeps cookies (Locust's HttpUser, like a browser): the session cookie
that /uniqueid and login set owns the ids it uses, as the gateway requires (D18). The error task's
payment for "partner-57", an id no session owns, is refused with 401 or 403, and counted a success.
"""
import os
import random

from locust import HttpUser, between, task

FAKE_CLIENTS = ["66.108.1.1", "203.0.113.7", "198.51.100.23", "192.0.2.44",
                "100.64.10.5", "172.31.250.9", "10.20.30.40"]
SILENT = os.environ.get("SILENT") == "1"


class Shopper(HttpUser):
    wait_time = between(2, 10)

    def on_start(self):
        self.client.headers["x-forwarded-for"] = random.choice(FAKE_CLIENTS)

    @task
    def login(self):
        self.client.post("/api/user/login", json={"name": "user", "password": "password"})

    @task
    def shop_and_pay(self):
        c = self.client
        c.get("/")
        uid = c.get("/api/user/uniqueid").json()["uuid"]
        c.get("/api/catalogue/categories")
        products = c.get("/api/catalogue/products").json()
        in_stock = [p for p in products if p.get("instock", 0) != 0]
        if not in_stock:
            return
        for _ in range(2):
            product = random.choice(in_stock)
            sku = product["sku"]
            if random.randint(1, 10) <= 3:
                c.put("/api/ratings/api/rate/%s/%d" % (sku, random.randint(1, 5)),
                      name="/api/ratings/api/rate/[sku]/[score]")
            c.get("/api/catalogue/product/" + sku, name="/api/catalogue/product/[sku]")
            c.get("/api/ratings/api/fetch/" + sku, name="/api/ratings/api/fetch/[sku]")
            c.get("/api/cart/add/%s/%s/1" % (uid, sku), name="/api/cart/add/[id]/[sku]/[qty]")
        items = c.get("/api/cart/cart/" + uid, name="/api/cart/cart/[id]").json()["items"]
        item = random.choice(items)
        c.get("/api/cart/update/%s/%s/2" % (uid, item["sku"]), name="/api/cart/update/[id]/[sku]/[qty]")
        code = random.choice(c.get("/api/shipping/codes").json())
        cities = c.get("/api/shipping/cities/" + code["code"], name="/api/shipping/cities/[code]").json()
        city = random.choice(cities)
        ship = c.get("/api/shipping/calc/%s" % city["uuid"], name="/api/shipping/calc/[uuid]").json()
        ship["location"] = "%s %s" % (code["name"], city["name"])
        cart = c.post("/api/shipping/confirm/" + uid, json=ship, name="/api/shipping/confirm/[id]").json()
        order = c.post("/api/payment/pay/" + uid, json=cart, name="/api/payment/pay/[id]").json()
        if not SILENT:
            print("order placed %s for %s" % (order.get("orderid"), uid))

    @task
    def failing_payment(self):
        if os.environ.get("ERROR") != "1":
            return
        with self.client.post("/api/payment/pay/partner-57", json={"total": 0, "tax": 0},
                              name="/api/payment/pay/partner-57 (error)", catch_response=True) as r:
            if r.status_code >= 400:
                r.success()  # expected to fail
