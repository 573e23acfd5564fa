-- One database per service, created when the PostgreSQL volume is first initialised.
CREATE DATABASE availability;
CREATE DATABASE booking;
CREATE DATABASE notifications;
CREATE DATABASE progress;
