/* roboshop.h - the entry point of each service inside the one multi-call binary
 * (services/roboshop.c): each service's main.c defines its <svc>_main, which the dispatcher calls
 * by the program's name. */
#ifndef SHOP_ROBOSHOP_H
#define SHOP_ROBOSHOP_H

int catalogue_main(int argc, char **argv);
int user_main(int argc, char **argv);
int cart_main(int argc, char **argv);
int shipping_main(int argc, char **argv);
int ratings_main(int argc, char **argv);
int payment_main(int argc, char **argv);
int dispatch_main(int argc, char **argv);

#endif
