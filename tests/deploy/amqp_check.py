#!/usr/bin/python3
"""tests/deploy/amqp_check.py: what a RabbitMQ user may do, for the deploy test's lock-down checks.

    amqp_check.py HOST PORT USER PASSWORD ACTION
ACTION: login (log in and open a channel), consume (basic.consume on the queue "orders"), publish (a confirmed
publish to the exchange "robot-shop"), declare (declare the exchange "robot-shop" and the queue "orders" as the
services' active mode does: "configure" on them, which D22 leaves to the deploy tool), passive (check them passively,
as the services do on the hosts). Prints one word: "allowed", "refused" (the broker said no: a failed login,
ACCESS_REFUSED) or "error: ..." (anything else, e.g. no connection). Never leaves a message behind when refused; a
publish that is allowed sends an order-less body dispatch drops ("lockdown-probe").
"""
import sys

import pika
import pika.exceptions as px


def main():
    host, port, user, password, action = sys.argv[1:6]
    params = pika.ConnectionParameters(host=host, port=int(port), credentials=pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5)
    try:
        conn = pika.BlockingConnection(params)
    except (px.ProbableAuthenticationError, px.ProbableAccessDeniedError, px.AuthenticationError):
        print("refused")
        return
    except Exception as e:  # noqa: BLE001 - any other failure is reported as such, never as "refused"
        print(f"error: {type(e).__name__} {e}")
        return
    try:
        ch = conn.channel()
        if action == "consume":
            ch.basic_consume("orders", lambda *a: None, auto_ack=False)
            ch.basic_cancel(ch.consumer_tags[0]) if ch.consumer_tags else None
        elif action == "publish":
            ch.confirm_delivery()
            ch.basic_publish("robot-shop", "orders", b"lockdown-probe")
        elif action in ("declare", "passive"):
            ch.exchange_declare("robot-shop", "direct", passive=action == "passive", durable=True)
            ch.queue_declare("orders", passive=action == "passive", durable=True)
        print("allowed")
    except px.ChannelClosedByBroker as e:
        print("refused" if e.reply_code == 403 else f"error: channel closed {e.reply_code} {e.reply_text}")
    except Exception as e:  # noqa: BLE001
        print(f"error: {type(e).__name__} {e}")
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    main()
