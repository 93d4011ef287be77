"""Groups of friends: connected components of an undirected graph.

    musketeer run examples/connected_components.py --backend local

Label propagation: every person starts with their own id as label and
repeatedly takes the smallest label among their friends, until no label
changes. The component's label is its smallest member id.
"""

from musketeer import col, connected_components, count, read

friendships = read("data/friendships.csv")  # person_a, person_b
members = connected_components(friendships, src="person_a", dst="person_b")

workflow = (members.group_by("component")
            .agg(people=count(), lowest=col("id").min(), highest=col("id").max())
            .order_by(col("people").desc()))

if __name__ == "__main__":
    print(workflow.collect())
