-- One database per service: each service owns its data (schema created at start-up).
CREATE DATABASE orders;
CREATE DATABASE inventory;
CREATE DATABASE payments;
CREATE DATABASE notifications;
CREATE DATABASE audit;
