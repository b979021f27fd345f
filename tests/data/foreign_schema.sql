-- A schema nobody on the synapscale side wrote: other names, a composite primary key, an enum,
-- a self-referencing FK, a unique varchar(20), CHECK constraints and a second schema.
CREATE SCHEMA shop;
CREATE SCHEMA shop_audit;

CREATE TYPE shop.order_state AS ENUM ('draft', 'placed', 'shipped', 'cancelled');

CREATE TABLE shop.stores (
    store_code varchar(20) PRIMARY KEY,
    display_name text NOT NULL,
    opened_on date NOT NULL,
    settings json
);

CREATE TABLE shop.categories (
    id serial PRIMARY KEY,
    parent_id integer REFERENCES shop.categories (id),
    label varchar(60) NOT NULL
);

CREATE TABLE shop.customers (
    customer_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_code varchar(20) NOT NULL REFERENCES shop.stores (store_code),
    handle varchar(20) NOT NULL UNIQUE,
    email text NOT NULL,
    loyalty_points integer NOT NULL DEFAULT 0 CHECK (loyalty_points >= 0),
    tier text NOT NULL CHECK (tier IN ('bronze', 'silver', 'gold')),
    referred_by bigint REFERENCES shop.customers (customer_no),
    signed_up timestamp NOT NULL
);

CREATE TABLE shop.orders (
    store_code varchar(20) NOT NULL REFERENCES shop.stores (store_code),
    order_no integer NOT NULL,
    customer_no bigint NOT NULL REFERENCES shop.customers (customer_no),
    state shop.order_state NOT NULL,
    total numeric(10, 2) NOT NULL CHECK (total >= 0),
    discount_pct smallint CHECK (discount_pct BETWEEN 0 AND 90),
    notes text,
    placed_at timestamptz,
    PRIMARY KEY (store_code, order_no)
);

CREATE TABLE shop.order_lines (
    store_code varchar(20) NOT NULL,
    order_no integer NOT NULL,
    line_no smallint NOT NULL,
    category_id integer REFERENCES shop.categories (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(8, 2) NOT NULL,
    labels text[],
    attrs jsonb,
    PRIMARY KEY (store_code, order_no, line_no),
    FOREIGN KEY (store_code, order_no) REFERENCES shop.orders (store_code, order_no)
);

CREATE TABLE shop_audit.changes (
    id bigserial PRIMARY KEY,
    happened_at timestamp NOT NULL DEFAULT now(),
    payload json
);
